"""A static HTML page of image rows (training web page, test results), as upstream's html.HTML."""
from __future__ import annotations

import os
from typing import Sequence

from util.fileio import atomic_write_text


class HTML:
    """Build `web_dir/index.html` showing images stored in `web_dir/images/`.

    refresh > 0 makes the browser reload the page every `refresh` seconds (live training view).
    """

    def __init__(self, web_dir: str | os.PathLike, title: str, refresh: int = 0):
        import dominate
        from dominate.tags import meta

        self.title = title
        self.web_dir = str(web_dir)
        self.img_dir = os.path.join(self.web_dir, "images")
        os.makedirs(self.img_dir, exist_ok=True)
        self.doc = dominate.document(title=title)
        if refresh > 0:
            with self.doc.head:
                meta(http_equiv="refresh", content=str(refresh))

    def get_image_dir(self) -> str:
        return self.img_dir

    def add_header(self, text: str) -> None:
        from dominate.tags import h3

        with self.doc:
            h3(text)

    def add_images(self, ims: Sequence[str], txts: Sequence[str], links: Sequence[str], width: int = 400) -> None:
        """One table row: each image (path relative to images/) links to `links[i]` with caption `txts[i]`."""
        from dominate.tags import a, br, img, p, table, td, tr

        row_table = table(border=1, style="table-layout: fixed;")
        self.doc.add(row_table)
        with row_table:
            with tr():
                for im, txt, link in zip(ims, txts, links):
                    with td(style="word-wrap: break-word;", halign="center", valign="top"):
                        with p():
                            with a(href=os.path.join("images", link)):
                                img(style=f"width:{width}px", src=os.path.join("images", im))
                            br()
                            p(txt)

    def save(self) -> str:
        """Write index.html atomically (a browser refreshing mid-write never sees half a page)."""
        path = os.path.join(self.web_dir, "index.html")
        atomic_write_text(path, self.doc.render())
        return path
