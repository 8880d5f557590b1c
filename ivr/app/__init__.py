"""The application layer: wires call, flow, speech, handoff and store together for a server."""
