"""Operator tools: `doctor`, `try`, `sync`, metrics and health (see README, Operating the bot)."""
