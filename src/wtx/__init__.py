"""wtx: WonderTix's deployment system.

It never imports Django. It meets the application only at the release artifact (a wheel plus
locked dependencies), the environment variables a release starts with, and HTTP
(/healthz, /readyz, /metrics).
"""

__version__ = "0.1.0"
