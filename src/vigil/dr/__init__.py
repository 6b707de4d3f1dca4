"""Backups and DR drills: backup engines, drills that measure RTO and RPO, reports."""
