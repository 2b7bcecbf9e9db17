"""Metrics: the registry ``seqgan evaluate --metrics`` names (:mod:`.registry`), exact and
fast BLEU / self-BLEU / distinct-n (:mod:`.bleu`) and ORGAN's music metrics (:mod:`.music`).
Pure functions of samples, a vocabulary and (for NLL) a model; no files, no training.
"""
