# quotehub: a static binary on a distroless base, running as non-root.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/quotehub ./cmd/quotehub && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/quotehub /quotehub
# The embedded user-data store (when no QUOTEHUB_MYSQL_DSN is set) keeps
# its file here; mount a volume to keep users' lists across containers.
COPY --from=build --chown=nonroot:nonroot /out/data /home/nonroot/data
VOLUME ["/home/nonroot/data"]
USER nonroot:nonroot
EXPOSE 8080
ENV QUOTEHUB_ADDR=:8080 QUOTEHUB_LOG_FORMAT=json QUOTEHUB_DATA_DIR=/home/nonroot/data
ENTRYPOINT ["/quotehub"]
