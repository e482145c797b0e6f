"""`python -m backend web`: the public Space's API and a page like its demo, served by us with
Gradio. What it promises: backend/SERVER.md. Gradio is imported only by app.py and launch.py."""
