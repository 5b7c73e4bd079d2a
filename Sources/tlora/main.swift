print("tlora")
