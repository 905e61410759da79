#!/bin/sh
# module 3
echo "module 3"
