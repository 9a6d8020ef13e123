"""Domains: workloads built on the platform. Each declares its parts through platform types.

The platform finds domains through the ``couturier.domains`` entry-point group (see
``pyproject.toml``), so adding a domain changes no platform module.
"""
