"""MQTT machines: the contract of docs/mqtt.md (`contract`) and the hub-side driver (`MqttDriver`)."""

from drivers.mqtt.driver import MqttDriver

__all__ = ["MqttDriver"]
