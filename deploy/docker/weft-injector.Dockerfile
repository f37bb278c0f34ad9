# syntax=docker/dockerfile:1
# weft-injector, the admission webhook.
# Build from the repository root:
#   docker build -f deploy/docker/weft-injector.Dockerfile -t ghcr.io/weft-mesh/weft-injector:0.1.0 .
# The binary is static (musl), so the image holds nothing else.
FROM rust:1.95-bookworm AS build
ARG TARGET=x86_64-unknown-linux-musl
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$TARGET"
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target "$TARGET" -p weft-injector --bin weft-injector \
 && mkdir /out \
 && for bin in weft-injector ; do cp "target/$TARGET/release/$bin" /out/; done

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/weft-injector"]
