"""ROS 2 nodes of robosteer: the policy node (Franka or sim), the demonstration recorder and the MuJoCo sim robot.

The nodes convert messages and call the library; their pure parts (chunk queue, safety filter, diagnostics) are plain
classes in :mod:`ros_nodes.chunk_queue`, :mod:`ros_nodes.safety` and :mod:`ros_nodes.diagnostics` that never import
rclpy, so they are tested without spinning a node. Console scripts: ``robosteer-policy-node``,
``robosteer-recorder-node``, ``robosteer-sim-node``.
"""
