"""Helpers for the viewer's end-to-end tests: a uvicorn server in a thread, headless Chromium
driven by Selenium, and a matcher factory that reuses the session's loaded backbone."""
