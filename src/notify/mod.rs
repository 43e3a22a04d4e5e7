//! Outbound Slack: the Web API client and every message powerpole sends.
