# syntax=docker/dockerfile:1
# guardduty-ecs-controller: a static-ish release binary on a distroless, non-root runtime.
# Build: docker build --platform linux/amd64 -t guardduty-ecs-controller \
#   --build-arg GEC_GIT_COMMIT=$(git rev-parse HEAD) --build-arg GEC_GIT_DATE=$(git log -1 --format=%cs) .
# (.git is not in the build context: without the arguments `--version` says "commit unknown".)
# scripts/check-image builds the same binary with the same flags and checks it runs as
# uid 65532 (no Docker engine is needed for that check).

# Pinned tags; pin by digest in your registry mirror (docker buildx imagetools inspect).
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not download them again. Cargo parses
# every target of the manifest, so each [[bench]] gets a stub (scripts/check-image replays
# this stage).
COPY Cargo.toml Cargo.lock ./
COPY crates/model/Cargo.toml crates/model/Cargo.toml
COPY crates/aws/Cargo.toml crates/aws/Cargo.toml
COPY crates/engine/Cargo.toml crates/engine/Cargo.toml
COPY crates/daemon/Cargo.toml crates/daemon/Cargo.toml
RUN mkdir -p crates/cli benches \
 && for c in model aws engine daemon; do mkdir -p crates/$c/src && echo '' > crates/$c/src/lib.rs; done \
 && echo 'fn main() {}' > crates/cli/main.rs \
 && for b in $(awk '/^\[\[bench\]\]/ {b = 1; next} b && /^name *=/ {gsub(/^name *= *"|"$/, ""); print; b = 0}' Cargo.toml); do \
      echo 'fn main() {}' > "benches/$b.rs"; done \
 && cargo fetch --locked
COPY . .
# The commit `--version` names (build.rs reads them when there is no .git).
ARG GEC_GIT_COMMIT=""
ARG GEC_GIT_DATE=""
# The same command scripts/check-image runs.
RUN cargo build --release --locked --bin guardduty-ecs-controller \
 && cp target/release/guardduty-ecs-controller /guardduty-ecs-controller

# distroless/cc: glibc, libgcc, CA certificates, /etc/passwd with nonroot (65532); no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /guardduty-ecs-controller /usr/local/bin/guardduty-ecs-controller
# The controller writes no file: it runs on a read-only root file system.
USER 65532:65532
EXPOSE 9090
# The binary listens on 127.0.0.1 by default; in a container the port must be reachable
# from outside it. An environment variable, so a replaced CMD keeps it.
ENV GEC_LISTEN=0.0.0.0:9090
ENTRYPOINT ["/usr/local/bin/guardduty-ecs-controller", "run"]
CMD ["--config", "/etc/guardduty-ecs-controller/desired-state.yaml"]
