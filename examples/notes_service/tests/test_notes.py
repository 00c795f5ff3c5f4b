"""The notes API, each test on its own database cloned from the migrated template."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import URL, create_engine, text


def author(client: FlaskClient, email: str = "ada@example.com") -> str:
    response = client.post("/authors", json={"email": email, "name": "Ada"})
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def test_an_author_writes_a_note_and_reads_it_back(client: FlaskClient) -> None:
    ada = author(client)
    created = client.post("/notes", json={"author_id": ada, "title": "Analytical engine",
                                          "body": "notes on Menabrea"})
    assert created.status_code == 201
    note = client.get(f"/notes/{created.get_json()['id']}").get_json()
    assert note == {"id": created.get_json()["id"], "title": "Analytical engine",
                    "body": "notes on Menabrea", "author_id": ada}


def test_emails_are_unique_whatever_their_case(client: FlaskClient) -> None:
    author(client, "ada@example.com")
    again = client.post("/authors", json={"email": "ADA@Example.COM", "name": "Ada"})
    assert again.status_code == 409


def test_search_finds_titles_that_resemble_the_query(client: FlaskClient) -> None:
    ada = author(client)
    for title in ("Analytical engine", "Difference engine", "Bernoulli numbers"):
        client.post("/notes", json={"author_id": ada, "title": title})
    found = client.get("/notes", query_string={"q": "analytic engin"}).get_json()
    assert [note["title"] for note in found][:1] == ["Analytical engine"]
    assert "Bernoulli numbers" not in [note["title"] for note in found]


def test_deleting_an_author_deletes_their_notes(client: FlaskClient, db_url: URL) -> None:
    ada = author(client)
    note = client.post("/notes", json={"author_id": ada, "title": "Sketch"}).get_json()
    assert client.delete(f"/authors/{ada}").status_code == 204
    assert client.get(f"/notes/{note['id']}").status_code == 404
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM notes")).scalar() == 0
    engine.dispose()


def test_each_test_starts_from_an_empty_database(client: FlaskClient) -> None:
    assert client.get("/notes", query_string={"q": "engine"}).get_json() == []
    author(client)  # the same email as the other tests: nothing of theirs is here


def test_the_template_was_prepared_before_migrating(db_url: URL) -> None:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pg_namespace "
                                 "WHERE nspname = 'reporting'")).scalar() == 1
        assert conn.execute(text("SELECT extname FROM pg_extension WHERE extname IN "
                                 "('citext', 'pg_trgm') ORDER BY 1")).scalars().all() == \
            ["citext", "pg_trgm"]
    engine.dispose()
