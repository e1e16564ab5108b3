"""The rclpy-free ROS I/O: message conversion, alignment, dataset writing, bag import.

Nothing in this package imports rclpy, the simulator or :mod:`ros_nodes`: messages are read by field name, so the
same code serves live rclpy messages (the nodes in :mod:`ros_nodes`) and rosbag2 recordings (``robosteer convert-bag``).

- :mod:`robosteer.ros.messages` -- ROS message contents -> robosteer arrays
- :mod:`robosteer.ros.alignment` -- as-of alignment of timestamped streams onto a frame tick
- :mod:`robosteer.ros.recording` -- which topics feed which part of a frame, and the recording session
- :mod:`robosteer.ros.dataset` -- episode-by-episode writing of recordings to a LeRobot dataset
- :mod:`robosteer.ros.bag_import` -- rosbag2 (MCAP or sqlite3) -> LeRobot dataset
- :mod:`robosteer.ros.env` -- the ROS 2 process environment (rclpy's library path), set before rclpy is imported
"""
