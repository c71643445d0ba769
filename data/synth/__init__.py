"""The synthetic cross-domain face world (studio / cabin-nir / kiosk).

``generate(domain, kind, out_dir, count, identities, size, seed, workers)`` writes a dataset folder;
the modules each hold one idea: ``head`` (identity + 3D landmarks + pose), ``expressions`` (AU
profiles and intensity), ``features`` (AU → feature geometry), ``domains`` (what each camera does),
``render`` (albedo + shading of one head), ``camera`` (a whole frame through optics and sensor),
``sample`` (one seeded sample), ``scenes`` (frames and video) and ``writer`` (folders, in parallel).
"""
from .domains import DOMAINS, DomainSpec, get_domain
from .writer import CROP_COLUMNS, KINDS, MARKER, generate, identity_pool

__all__ = ["CROP_COLUMNS", "DOMAINS", "DomainSpec", "KINDS", "MARKER", "generate", "get_domain", "identity_pool"]
