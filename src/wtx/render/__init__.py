"""Renderers: turn the one environment spec into what each engine needs."""
