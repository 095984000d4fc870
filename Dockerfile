# Multi-stage build: compile both binaries, ship them in a small image as a non-root user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Everything the manifest names (sources, tests, benches, examples); .dockerignore keeps
# build outputs and local environments out.
COPY . .
# --workspace: at the workspace root cargo builds only the root package, and the emulator's
# binary is its own crate's.
RUN cargo build --release --locked --workspace --bins \
 && install -m 0755 target/release/aws-flightsql target/release/ec2-emulator /usr/local/bin/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin flightsql
COPY --from=build /usr/local/bin/aws-flightsql /usr/local/bin/ec2-emulator /usr/local/bin/
USER flightsql
# A non-loopback address needs authentication: mount a users file and set
# AWS_FLIGHTSQL_USERS_FILE (see `aws-flightsql hash-password`), or, when something in front
# already restricts who reaches the container, AWS_FLIGHTSQL_ALLOW_UNAUTHENTICATED=true.
# Without either the server refuses to start and says so.
ENV AWS_FLIGHTSQL_LISTEN=0.0.0.0:50051
# The health check's target (the health service needs no credentials). With TLS, set it to
# grpc+tls://localhost:50051 and AWS_FLIGHTSQL_TLS_CA to the CA of the server's certificate.
ENV AWS_FLIGHTSQL_CONNECT=grpc://127.0.0.1:50051
EXPOSE 50051 9090
HEALTHCHECK --interval=10s --timeout=5s --retries=6 \
  CMD ["aws-flightsql", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["aws-flightsql"]
CMD ["serve"]
