# Multi-stage: build with the Rust toolchain, run from a small non-root image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/facade /usr/local/bin/facade
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/facade"]
CMD ["serve", "--config", "/etc/facade/facade.yaml"]
