"""The Seedream relay: payloads, the streaming HTTP client, typed errors, the SSE parser."""
