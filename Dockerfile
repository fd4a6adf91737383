# The image `make image` builds without a Docker daemon, for people who build
# with Docker: the same files (written by the same code, tools/release rootfs),
# user, ports, volume, environment, entrypoint and labels. Not the same bytes:
# Docker adds its own history and timestamps. `make image` is the path this
# repository tests; internal/release's tests check this file against it.
#
#   docker build -t electric:local-build \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg COMMIT="$(git rev-parse HEAD)" .

# The Go of go.mod (the release builds are reproducible for one toolchain).
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
ARG TARGETARCH=amd64
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go run ./tools/release rootfs -version "$VERSION" -commit "$COMMIT" -arch "$TARGETARCH" -out /rootfs

FROM scratch
ARG VERSION=dev
ARG COMMIT=unknown
COPY --from=build /rootfs/ /
COPY --from=build --chown=65532:65532 /rootfs/var/lib/electric/ /var/lib/electric/
ENV PATH=/usr/local/bin
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENV LISTEN_ADDRESS=0.0.0.0
ENV OFFSET_STORAGE_FILE=/var/lib/electric/offset_storage_data.dat
USER 65532:65532
WORKDIR /var/lib/electric
EXPOSE 5433/tcp 5050/tcp 5133/tcp
VOLUME ["/var/lib/electric"]
LABEL org.opencontainers.image.title="electric" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.source="https://github.com/electric-sql/electric-go" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/local/bin/electric", "serve"]
