//! Inbound Slack: verify, parse and acknowledge slash commands, interactions and events.
