"""A local stand-in for WhatsApp Web (DOM per shared/whatsapp-web-dom.md) for demos and tests; see README.md."""

from wa_queue.simulator.app import SimServer, create_app, serve

__all__ = ["SimServer", "create_app", "serve"]
