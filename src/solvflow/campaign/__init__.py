"""Campaigns: workflow expansion and sweeps, comparison across run directories, claims, report."""
