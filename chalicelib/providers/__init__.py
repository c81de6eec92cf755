"""Image providers: the AIML API in AWS, an offline PNG drawer for local runs.

``provider_from_settings`` picks one; the rest of the code sees only ``ImageProvider``.
"""

from chalicelib.providers.aiml import AimlClient, provider_from_settings
from chalicelib.providers.base import GeneratedImage, ImageProvider

__all__ = ["AimlClient", "GeneratedImage", "ImageProvider", "provider_from_settings"]
