"""Prompts as data: persona cards (personas/*.toml) and prompt templates (templates/*.jinja)."""
