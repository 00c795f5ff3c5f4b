"""The HTTP API: JSON in, JSON out."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask, abort, jsonify, request
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from notes_service.models import Author, Note
from notes_service.settings import database_url


def create_app(engine: Engine | None = None) -> Flask:
    """The app, on `engine` (default: one on NOTES_DATABASE_URL)."""
    app = Flask(__name__)
    engine = engine or create_engine(database_url())

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            abort(400, "a JSON object, please")
        return data

    @app.post("/authors")
    def add_author() -> Any:
        data = body()
        with Session(engine) as session:
            author = Author(email=str(data.get("email", "")).strip(),
                            name=str(data.get("name", "")))
            session.add(author)
            try:
                session.commit()
            except IntegrityError:
                return jsonify(error="that email is taken"), 409
            return jsonify(id=str(author.id), email=author.email), 201

    @app.delete("/authors/<uuid:author_id>")
    def delete_author(author_id: uuid.UUID) -> Any:
        with Session(engine) as session:
            author = session.get(Author, author_id)
            if author is None:
                abort(404)
            session.delete(author)
            session.commit()
        return "", 204

    @app.post("/notes")
    def add_note() -> Any:
        data = body()
        try:
            author_id = uuid.UUID(str(data.get("author_id")))
        except ValueError:
            abort(400, "author_id must be an id")
        with Session(engine) as session:
            if session.get(Author, author_id) is None:
                abort(404, "no such author")
            note = Note(author_id=author_id, title=str(data.get("title", "")),
                        body=str(data.get("body", "")))
            session.add(note)
            session.commit()
            return jsonify(id=str(note.id), title=note.title), 201

    @app.get("/notes")
    def search_notes() -> Any:
        """Notes whose title resembles `q` (trigram similarity), best first."""
        q = request.args.get("q", "")
        with Session(engine) as session:
            similarity = func.similarity(Note.title, q)
            rows = session.execute(select(Note.id, Note.title, similarity)
                                   .where(Note.title.op("%")(q))
                                   .order_by(similarity.desc(), Note.id)).all()
        return jsonify([{"id": str(id_), "title": title, "score": round(score, 3)}
                        for id_, title, score in rows])

    @app.get("/notes/<uuid:note_id>")
    def get_note(note_id: uuid.UUID) -> Any:
        with Session(engine) as session:
            note = session.get(Note, note_id)
            if note is None:
                abort(404)
            return jsonify(id=str(note.id), title=note.title, body=note.body,
                           author_id=str(note.author_id))

    return app
