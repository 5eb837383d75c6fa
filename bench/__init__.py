"""`make bench`: valuegraph's service measured against micrograd, orjson.loads and a bare Flask app.

Run `python -m bench --help` for the options; README's Performance section shows a full run.
"""
