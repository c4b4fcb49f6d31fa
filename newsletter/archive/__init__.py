"""The archive: the legacy blog's posts brought into the store, and every sent edition published
as a static, searchable, topic-filtered web archive with an Atom feed.

    legacy.parse_archive(text)        pure: the old blog's plain text → posts + located problems
    importer.import_archive(nl, path) posts → ready summaries + one sent edition per month
    tagging                           untagged (imported) summaries, and tagging them
    site.build_site(nl, out_dir)      sent editions → static pages, search index, feed
    views.archive_blueprint           the same pages served live under /archive/
"""
