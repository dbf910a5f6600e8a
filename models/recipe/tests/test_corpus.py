"""The corpus stage (scripts/data_corpus.py): the licence decision (what the package says, what the manifest declares,
what is refused), the stable valid split and which sources a build reads.

Run from models/recipe/: python -m unittest tests.test_corpus
"""

import json
import tempfile
import unittest
from pathlib import Path

from scripts.data_corpus import decide_licence, is_valid, select_sources, update_manifest

DEB = {"name": "python3-example", "version": "1.0-1", "registry": "debian"}


class DecideLicence(unittest.TestCase):
    def test_a_parsed_licence_is_kept_with_where_it_was_read(self):
        self.assertEqual(decide_licence(DEB, "BSD-3-clause", "usr/share/doc/python3-example/copyright"),
                         ("BSD-3-clause", "usr/share/doc/python3-example/copyright"))

    def test_no_licence_needs_a_declared_one(self):
        with self.assertRaisesRegex(RuntimeError, "licence_declared"):
            decide_licence(DEB, None, "usr/share/doc/python3-example/copyright")
        licence, where = decide_licence({**DEB, "licence_declared": "MIT"}, None, None)
        self.assertEqual(licence, "MIT")
        self.assertIn("licence_declared in the manifest (the package has no copyright file", where)

    def test_same_as_upstream_is_not_a_licence(self):
        # Matplotlib's Debian copyright file: the field exists but names nothing.
        with self.assertRaisesRegex(RuntimeError, "not an open-source licence"):
            decide_licence(DEB, "same as upstream", "copyright")
        licence, where = decide_licence({**DEB, "licence_declared": "Matplotlib"}, "same as upstream", "copyright")
        self.assertEqual(licence, "Matplotlib")
        self.assertIn("'same as upstream'", where)

    def test_a_pointer_to_a_licence_file_is_refused(self):
        # @tldraw/editor's package.json: "SEE LICENSE IN LICENSE.md" (a licence that is not open source).
        npm = {"name": "@tldraw/editor", "version": "5.1.1", "registry": "npm"}
        with self.assertRaisesRegex(RuntimeError, "@tldraw/editor@5.1.1: licence 'SEE LICENSE IN LICENSE.md'"):
            decide_licence(npm, "SEE LICENSE IN LICENSE.md", "package.json")


class ValidSplit(unittest.TestCase):
    def test_the_coin_is_a_fixed_hash_of_package_and_path(self):
        # Every build must put an old file in the split it was in before: session 24 grew the corpus by 143 packages
        # and still validated on the old valid files. These are the files that land in valid under today's hash; a
        # change to the hash would reshuffle train and valid and fail here.
        picked = [i for i in range(2000) if is_valid("requests", f"src/m{i}.py", 0.02)]
        self.assertEqual(len(picked), 36)
        self.assertEqual(picked[:5], [53, 114, 115, 182, 253])


class SelectSources(unittest.TestCase):
    SOURCES = [{"name": "old", "smoke": True}, {"name": "old2"}, {"name": "new", "added": 24},
               {"name": "newer", "added": 25, "smoke": True}]

    def names(self, smoke, added_by):
        return [s["name"] for s in select_sources(self.SOURCES, smoke, added_by)]

    def test_added_by_leaves_out_later_sources(self):
        self.assertEqual(self.names(False, None), ["old", "old2", "new", "newer"])
        self.assertEqual(self.names(False, 23), ["old", "old2"])  # the corpus before session 24
        self.assertEqual(self.names(False, 24), ["old", "old2", "new"])
        self.assertEqual(self.names(True, None), ["old", "newer"])
        self.assertEqual(self.names(True, 24), ["old"])

    def test_a_partial_build_rewrites_only_the_sources_it_read(self):
        manifest = {"sources": [{"name": "old", "licence": "MIT", "files": 3}, {"name": "new", "added": 24,
                                                                               "licence": "BSD", "files": 9}]}
        measured = {"old": {"licence": "Expat", "licence_from": "copyright", "files": 4, "bytes": 10,
                            "languages": {"python": 4}}}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sources.json"
            update_manifest(path, manifest, measured)  # the build of --added-by 23 read "old" alone
            written = json.loads(path.read_text())["sources"]
        self.assertEqual((written[0]["licence"], written[0]["files"]), ("Expat", 4))
        self.assertEqual(written[1], {"name": "new", "added": 24, "licence": "BSD", "files": 9})


if __name__ == "__main__":
    unittest.main()
