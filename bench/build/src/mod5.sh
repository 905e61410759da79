#!/bin/sh
# module 5
echo "module 5"
