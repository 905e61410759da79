console.log("hello v1")
