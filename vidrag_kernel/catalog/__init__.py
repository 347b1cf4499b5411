"""The catalog: collections, videos, transcripts, chunks, jobs and conversations."""

from .db import Catalog
from .models import (
    Base,
    Chunk,
    Citation,
    Collection,
    CollectionVideo,
    Conversation,
    Correction,
    IngestJob,
    Message,
    Segment,
    Video,
    chunk_uuid,
    vector_id,
)

__all__ = [
    "Base",
    "Catalog",
    "Chunk",
    "Citation",
    "Collection",
    "CollectionVideo",
    "Conversation",
    "Correction",
    "IngestJob",
    "Message",
    "Segment",
    "Video",
    "chunk_uuid",
    "vector_id",
]
