#!/bin/sh
# module 1
echo "module 1"
