"""archive full-text search

The index `newsletter.archive.search` reads, kept by the database with triggers on `summaries`:
SQLite, an FTS5 table (rowid = summaries.id; whole words, case and accents folded by unicode61);
PostgreSQL, a table of `tsvector`s ('simple' configuration: no stemming, accents folded by
`summary_search_fold`, which also turns every run of other characters into a space, so
PostgreSQL's parser sees words as FTS5's unicode61 does, not tags, URLs or e-mail addresses) with
a GIN index. Both hold the headline, the citation (authors, editors,
year, title, journal or book) and the text (note, summary, implications). Existing summaries are
indexed here. The models do not describe these objects (see `search.include_object`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import unicodedata

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import newsletter.db  # noqa: F401

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_SQLITE_CITATION = ("coalesce(json_extract({row}.citation, '$.authors'), '') || ' ' || "
                    "coalesce(json_extract({row}.citation, '$.editors'), '') || ' ' || "
                    "coalesce(json_extract({row}.citation, '$.year'), '') || ' ' || "
                    "coalesce(json_extract({row}.citation, '$.title'), '') || ' ' || "
                    "coalesce(json_extract({row}.citation, '$.source'), '') || ' ' || "
                    "coalesce(json_extract({row}.citation, '$.book_title'), '')")
_SQLITE_TEXT = ("coalesce({row}.note_md, '') || ' ' || {row}.body_md || ' ' || "
                "{row}.implications_md")


def _sqlite_insert(row: str) -> str:
    return (f"INSERT INTO summary_search (rowid, headline, citation, body) VALUES ({row}.id, "
            f"{row}.headline, {_SQLITE_CITATION.format(row=row)}, "
            f"{_SQLITE_TEXT.format(row=row)});")


_ACCENTED = "àáâãäåāăąçćčďèéêëēėęěìíîïīįñńňòóôõöōőŕřśšşťùúûüūůűųýÿźżžłø"
_PLAIN = "".join(unicodedata.normalize("NFKD", ch)[0] for ch in _ACCENTED[:-2]) + "lo"

_PG_FUNCTIONS = f"""
CREATE FUNCTION summary_search_fold(value text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT regexp_replace(translate(lower(coalesce(value, '')), '{_ACCENTED}', '{_PLAIN}'),
                        '[^[:alnum:]]+', ' ', 'g')
$$;
CREATE FUNCTION summary_search_document(s summaries) RETURNS tsvector
LANGUAGE sql STABLE AS $$
  SELECT setweight(to_tsvector('simple', summary_search_fold(s.headline)), 'A')
      || setweight(to_tsvector('simple', summary_search_fold(concat_ws(' ',
             (SELECT string_agg(a, ' ') FROM json_array_elements_text(
                 coalesce(s.citation->'authors', '[]'::json)) a),
             (SELECT string_agg(e, ' ') FROM json_array_elements_text(
                 coalesce(s.citation->'editors', '[]'::json)) e),
             s.citation->>'year', s.citation->>'title', s.citation->>'source',
             s.citation->>'book_title'))), 'B')
      || setweight(to_tsvector('simple', summary_search_fold(concat_ws(' ',
             s.note_md, s.body_md, s.implications_md))), 'C')
$$;
CREATE FUNCTION summary_search_refresh() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO summary_search (summary_id, document)
  VALUES (NEW.id, summary_search_document(NEW))
  ON CONFLICT (summary_id) DO UPDATE SET document = EXCLUDED.document;
  RETURN NEW;
END
$$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE summary_search USING fts5(headline, citation, body, "
                   "tokenize = 'unicode61 remove_diacritics 2')")
        op.execute("CREATE TRIGGER summary_search_insert AFTER INSERT ON summaries BEGIN "
                   + _sqlite_insert("new") + " END")
        op.execute("CREATE TRIGGER summary_search_update AFTER UPDATE ON summaries BEGIN "
                   "DELETE FROM summary_search WHERE rowid = old.id; "
                   + _sqlite_insert("new") + " END")
        op.execute("CREATE TRIGGER summary_search_delete AFTER DELETE ON summaries BEGIN "
                   "DELETE FROM summary_search WHERE rowid = old.id; END")
        op.execute("INSERT INTO summary_search (rowid, headline, citation, body) SELECT s.id, "
                   f"s.headline, {_SQLITE_CITATION.format(row='s')}, "
                   f"{_SQLITE_TEXT.format(row='s')} FROM summaries s")
        return
    op.execute("CREATE TABLE summary_search (summary_id INTEGER PRIMARY KEY REFERENCES "
               "summaries (id) ON DELETE CASCADE, document tsvector NOT NULL)")
    op.execute("CREATE INDEX summary_search_document_idx ON summary_search USING gin (document)")
    op.execute(_PG_FUNCTIONS)
    op.execute("CREATE TRIGGER summary_search_refresh AFTER INSERT OR UPDATE ON summaries "
               "FOR EACH ROW EXECUTE FUNCTION summary_search_refresh()")
    op.execute("INSERT INTO summary_search (summary_id, document) "
               "SELECT s.id, summary_search_document(s) FROM summaries s")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS summary_search_{trigger}")
        op.execute("DROP TABLE IF EXISTS summary_search")
        return
    op.execute("DROP TRIGGER IF EXISTS summary_search_refresh ON summaries")
    op.execute("DROP TABLE IF EXISTS summary_search")
    for function in ("summary_search_refresh()", "summary_search_document(summaries)",
                     "summary_search_fold(text)"):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
