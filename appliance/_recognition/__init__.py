"""The bundled plate recognizer (platedet detector + platerec OCR), loaded as a plugin.

It registers through the same ``appliance.plugins`` entry point a vendor's recognizer would use
(``recognizer-platedet = "appliance._recognition.plugin"``), so it can be swapped out by config.
"""
