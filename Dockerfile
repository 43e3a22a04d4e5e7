# powerpole serve: a static-ish release binary on a distroless base, run as a non-root user.
#   docker build -t powerpole .
#   docker run --rm -p 3000:3000 -v /etc/powerpole:/etc/powerpole:ro -e AWS_REGION=eu-west-1 powerpole
# Configuration is mounted read-only at /etc/powerpole/powerpole.toml; secrets stay in Secrets
# Manager (the config holds references only) and AWS credentials come from the task/instance role.
# Set `[server] listen = "0.0.0.0:3000"` in the config: the default is loopback only.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Only the service binary; the Lambda and test crates of the workspace are not built.
RUN cargo build --release --locked --package powerpole --bin powerpole \
    && install -m 0555 target/release/powerpole /powerpole

# glibc, CA certificates (Slack and AWS over TLS) and a `nonroot` user (65532); no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /powerpole /usr/local/bin/powerpole
USER 65532:65532
EXPOSE 3000
# SIGTERM: serve stops accepting, lets follow-ups in flight finish (up to 25 s) and exits 0;
# give it a stop timeout of at least 30 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/powerpole"]
CMD ["serve", "--config", "/etc/powerpole/powerpole.toml"]
