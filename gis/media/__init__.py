"""Media of cases: photos checked and cleaned (:mod:`gis.media.photos`) and where they are kept
(:mod:`gis.media.storage`)."""
