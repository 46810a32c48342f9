"""Chain-of-custody reports a judge can read: HTML, and PDF through headless Chromium.

``build.build_report`` gathers everything about an evidence root or a received bundle into
a ``model.Report`` (plain data); ``html.render_html`` renders it; ``pdf.write_pdf`` prints
it. Thumbnails (``thumbnails``) and the expert's reproduction commands (``commands``) are
made while building. Nothing here prints; the CLI renders and writes.
"""
