"""The web layer: the app factory (app.py), the routes (routes/), the one answer path (answer.py),
reading the body (body.py), problem details (problems.py), bearer tokens and OPTIONS."""
