"""The web dashboard `promptgauge serve --http-listen` serves: web.py (HTTP,
sessions), pages.py (what each page shows), charts.py (SVG), sessions.py."""
