"""Transports: one small class per outside system, behind one HTTP seam (:mod:`.http`)."""
