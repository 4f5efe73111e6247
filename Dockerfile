# quotehub: a static binary on a distroless base, running as non-root.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/quotehub ./cmd/quotehub

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/quotehub /quotehub
USER nonroot:nonroot
EXPOSE 8080
ENV QUOTEHUB_ADDR=:8080 QUOTEHUB_LOG_FORMAT=json QUOTEHUB_DATA_DIR=/home/nonroot/data
ENTRYPOINT ["/quotehub"]
