print("swiftspeed")
