"""The board side of greenfed: sensing, DVFS, local training, the gRPC client.

Runs on Python >= 3.8 and torch >= 2.0 (JetPack 5): keep postponed annotations and no
``match`` statements here.
"""
