"""The schema: authors (emails unique whatever their case: citext) and their notes (found by
trigram similarity of their titles: pg_trgm). Deleting an author deletes their notes."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import DateTime, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import CITEXT, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The service's tables."""


class Author(Base):
    """Someone who writes notes; their email is unique whatever its case."""

    __tablename__ = "authors"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True,
                                          server_default=text("gen_random_uuid()"))
    email: Mapped[str] = mapped_column(CITEXT, unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Note(Base):
    """A note, found by the trigram similarity of its title."""

    __tablename__ = "notes"
    __table_args__ = (Index("notes_title_trgm", "title", postgresql_using="gin",
                            postgresql_ops={"title": "gin_trgm_ops"}),)

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True,
                                          server_default=text("gen_random_uuid()"))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("authors.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True),
                                                    server_default=func.now())
