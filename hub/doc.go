// Package hub owns connections and subscriptions: the registry of which
// client watches which symbol, the per-client outbox with conflation, the
// fan-out of updates, and the session protocol that WebSocket and SSE share.
//
// The data path is built so that a quote update costs one JSON encoding per
// node, however many clients watch the symbol, and a slow client costs at
// most one pending quote per subscribed symbol:
//
//   - Publish encodes each quote once into an Update and offers the same
//     bytes to every subscriber of its symbol. An offer never blocks: under
//     the client's own lock it replaces the symbol's pending update (the
//     older one is conflated away) or queues it, then wakes the client's
//     writer.
//   - Each client's writer takes everything pending at once and hands it
//     to its Transport, which writes it in one frame or one chunk. The
//     writer runs only while something is pending (Client.StartOnDemand):
//     on the hub's pool of writer goroutines with non-blocking writes when
//     the transport can (TryWriter), else on a goroutine of its own.
//   - A client whose writer has been stuck in one write for longer than the
//     slow-consumer timeout is aborted with close code 4000.
package hub
