"""fabzone: the hub that validates, queues and drives the machines of a digital fabrication zone."""
