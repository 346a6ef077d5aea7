"""The sans-IO core: every wire rule, shared by the sync and async clients.

Nothing here touches a socket. The clients in :mod:`clust.client` feed bytes and
headers in and get request specs, typed responses, typed errors, retry decisions
and stream events out, so one place decides each rule.
"""
