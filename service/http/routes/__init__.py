"""One blueprint per resource: evaluate, grade, expression, render, and the service about itself (meta)."""
