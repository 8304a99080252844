"""The online services the sky builder may ask, in one place.

Each is an option of aladin_data.py (--mocserver_url, --sesame_url, --hips2fits_url) so that tests
point them at a stand-in on 127.0.0.1 and users at a mirror. None means: the client library's own
configured default, so the address (and its mirror) is kept in one place only:
- Sesame name resolution: astropy.coordinates.name_resolve.sesame_url (CDS, then a mirror);
- hips2fits: astroquery.hips2fits.conf.server (alasky, then alaskybis).
The MocServer (CDS ID -> HiPS URL) is asked through our fetcher, so it needs its address here.
"""
from __future__ import annotations

MOCSERVER_URL = "https://alasky.cds.unistra.fr/MocServer/query"
SESAME_URL: str | None = None
HIPS2FITS_URL: str | None = None
