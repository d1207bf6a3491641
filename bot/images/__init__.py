"""Attachments to images the model can see: choose, fetch, decode and downscale (Pillow), cache in Redis."""
